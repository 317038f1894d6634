import twilio from "twilio";
import { describe, expect, it } from "vitest";
import { signTwilioRequest } from "../fakes/twilio.js";

// Published vectors from Twilio's webhook security documentation.
const docsVector = {
  token: "12345",
  url: "https://example.com/myapp.php?foo=1&bar=2",
  params: {
    Digits: "1234",
    To: "+18005551212",
    From: "+14158675310",
    Caller: "+14158675310",
    CallSid: "CA1234567890ABCDE",
  },
  signature: "L/OH5YylLD5NRKLltdqwSvS0BnU=",
};

const sdkVector = {
  token: "12345",
  url: "https://mycompany.com/myapp.php?foo=1&bar=2",
  params: {
    CallSid: "CA1234567890ABCDE",
    Caller: "+14158675309",
    Digits: "1234",
    From: "+14158675309",
    To: "+18005551212",
  },
  signature: "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
};

describe("signTwilioRequest", () => {
  it.each([
    ["Twilio docs", docsVector],
    ["twilio-node spec", sdkVector],
  ])("reproduces the %s vector", (_name, v) => {
    expect(signTwilioRequest(v.token, v.url, v.params)).toBe(v.signature);
  });

  it("agrees with the SDK validator on non-ASCII values", () => {
    const params = {
      Body: "Grüße aus Köln 👋",
      ProfileName: "Zoë Łukasiewicz",
      From: "whatsapp:+4915112345678",
    };
    const url = "https://bridge.example.com/webhooks/acme/whatsapp";
    const signature = signTwilioRequest("secret-token", url, params);
    expect(twilio.validateRequest("secret-token", signature, url, params)).toBe(true);
    expect(twilio.validateRequest("other-token", signature, url, params)).toBe(false);
  });
});
