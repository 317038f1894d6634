import { describe, expect, it } from "vitest";
import { buildClientMetadata } from "../../src/quickchat/metadata.js";

const identity = { channel: "telegram", channelUserId: "4242", threadKey: "4242:17" };
const identityKeys = { channel: "telegram", channel_user_id: "4242", channel_thread_id: "4242:17" };

// toStrictEqual throughout: a key present with an undefined value is a key Quickchat receives (or refuses).
describe("buildClientMetadata", () => {
  it("sends the channel identity alone when there is no user name or topic", () => {
    expect(buildClientMetadata(identity)).toStrictEqual(identityKeys);
  });

  it("leaves out an empty user name and topic", () => {
    expect(buildClientMetadata({ ...identity, userName: "", kbTopic: "" })).toStrictEqual(identityKeys);
  });

  it("adds the user name when known", () => {
    expect(buildClientMetadata({ ...identity, userName: "Zoë" })).toStrictEqual({
      ...identityKeys,
      user_name: "Zoë",
    });
  });

  it("adds the tenant's knowledge-base topic when set", () => {
    expect(buildClientMetadata({ ...identity, kbTopic: "billing" })).toStrictEqual({
      ...identityKeys,
      kb_topic: "billing",
    });
  });

  it("stays within Quickchat's 5 keys with everything set", () => {
    const metadata = buildClientMetadata({ ...identity, userName: "Zoë", kbTopic: "billing" });
    expect(metadata).toStrictEqual({ ...identityKeys, user_name: "Zoë", kb_topic: "billing" });
    expect(Object.keys(metadata).length).toBeLessThanOrEqual(5);
  });
});
