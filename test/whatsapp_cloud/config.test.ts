import { describe, expect, it } from "vitest";
import { whatsappCloudSchema } from "../../src/channels/whatsapp_cloud/config.js";

const MINIMAL = {
  app_secret: "6c1f0a9e3b2d4c5f8e7a9b0c1d2e3f40",
  access_token: "EAAG...",
  verify_token: "chosen by the operator",
  phone_number_id: "106540352242922",
};

describe("whatsappCloudSchema", () => {
  it("fills in Meta's Graph API, its current version and no link previews", () => {
    expect(whatsappCloudSchema.parse(MINIMAL)).toEqual({
      ...MINIMAL,
      graph_base: "https://graph.facebook.com",
      graph_version: "v26.0",
      preview_url: false,
    });
  });

  it("keeps a proxy or fake as graph_base, another version and previews", () => {
    const custom = {
      ...MINIMAL,
      graph_base: "http://127.0.0.1:8080/graph",
      graph_version: "v25.0",
      preview_url: true,
    };
    expect(whatsappCloudSchema.parse(custom)).toEqual(custom);
  });

  it.each<[string, Record<string, unknown>, string]>([
    ["a phone number instead of its id", { phone_number_id: "+15550783881" }, "phone_number_id"],
    ["a version without the v", { graph_version: "26.0" }, "graph_version"],
    ["a graph_base that is not http(s)", { graph_base: "ftp://graph.facebook.com" }, "graph_base"],
    ["an empty verify token", { verify_token: "" }, "verify_token"],
    ["no app secret", { app_secret: undefined }, "app_secret"],
    ["a setting it does not know", { webhook_secret: "x" }, ""],
    ["preview_url as a string", { preview_url: "yes" }, "preview_url"],
  ])("refuses %s", (_, change, path) => {
    const result = whatsappCloudSchema.safeParse({ ...MINIMAL, ...change });
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((issue) => issue.path.join("."))).toContain(path);
  });

  it("asks for the phone number id quoted when YAML read it as a number (a number loses digits past 2^53)", () => {
    const result = whatsappCloudSchema.safeParse({ ...MINIMAL, phone_number_id: 106540352242922 });
    expect(result.error?.issues.map((issue) => issue.message)).toEqual([
      'must be a string of digits (quote it in YAML: "106540352242922")',
    ]);
  });
});
