/**
 * Rotating BRIDGE_SECRET_KEY without an outage: two service processes on one database walk the procedure
 * of docs/operations.md ("Secret key rotation") step by step, each restart leaving the two on different key
 * sets for a while, with admin writes through each and webhooks flowing throughout. Every webhook must be
 * accepted (a replica that is restarting may say 503 "shutting down", and the channel redelivers to the
 * other), every message answered, none failed, and no process may ever find the tenant unreadable.
 */

import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../support/harness.js";
import { bridgeBin } from "../support/service-build.js";
import { Inbox, sleep } from "./support/outcomes.js";
import { FaultWorld, IDS, POSTGRES_AVAILABLE, type ServiceProcess, size } from "./support/service.js";
import { answeredCount, CHANNELS, type Message, markerOf, tally, webhookFor } from "./support/traffic.js";

const TIMEOUT_MS = size(180_000, 420_000);
/** Threads per channel, each sending its next message once the previous one was accepted. */
const THREADS = size(2, 6);
/** Pause between a thread's messages. */
const PAUSE_MS = size(150, 40);
/** How long traffic runs in each state of the procedure before the next step. */
const DWELL_MS = size(1_500, 5_000);

const [K1, K2] = [randomBytes(32).toString("base64"), randomBytes(32).toString("base64")];

/** The tenant lives in the database (the admin API's), not in the environment: blank the shorthand. */
const NO_SHORTHAND = Object.fromEntries(
  [
    "QUICKCHAT_SCENARIO_ID",
    "QUICKCHAT_TOKEN",
    "QUICKCHAT_BASE_URL",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_WEBHOOK_SECRET",
    "TELEGRAM_API_ROOT",
    "SLACK_SIGNING_SECRET",
    "SLACK_BOT_TOKEN",
    "SLACK_API_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_WHATSAPP_FROM",
    "TWILIO_API_BASE",
  ].map((name) => [name, ""]),
);

const adminHeaders = { authorization: `Bearer ${IDS.adminToken}`, "content-type": "application/json" };

describe.runIf(POSTGRES_AVAILABLE)("secret key rotation with two replicas", () => {
  let world: FaultWorld;
  let inbox: Inbox;

  beforeAll(async () => {
    world = await FaultWorld.create({ ...NO_SHORTHAND, BRIDGE_SECRET_KEY: K1 });
    inbox = new Inbox(world.database.url!);
  });
  afterAll(async () => {
    await inbox?.close();
    await world?.close();
  });

  it(
    "serves every tenant throughout and fails no message",
    async () => {
      const replicas = {
        a: await world.startService(),
        b: await world.startService(),
      };
      const live = new Set<ServiceProcess>([replicas.a, replicas.b]);

      const tenant = {
        id: "default",
        quickchat: {
          scenario_id: IDS.scenario,
          token: IDS.quickchatToken,
          base_url: world.fakes.urls.quickchat,
        },
        telegram: {
          bot_token: IDS.telegramToken,
          webhook_secret: IDS.telegramSecret,
          api_root: world.fakes.urls.telegram,
        },
        slack: {
          signing_secret: IDS.slackSigningSecret,
          bot_token: IDS.slackBotToken,
          api_url: `${world.fakes.urls.slack}/api/`,
        },
        whatsapp: {
          account_sid: IDS.twilioSid,
          auth_token: IDS.twilioToken,
          from: IDS.twilioFrom,
          api_base: world.fakes.urls.twilio,
        },
      };
      const created = await fetch(`${replicas.a.url}/admin/tenants`, {
        method: "POST",
        headers: adminHeaders,
        body: JSON.stringify(tenant),
      });
      expect(created.status).toBe(201);

      /** Answers other than 200 and a draining replica's 503, with the replica's key set: must stay empty. */
      const problems: string[] = [];
      const keysOf = new Map<ServiceProcess, string>([
        [replicas.a, "K1"],
        [replicas.b, "K1"],
      ]);

      /** Reads the tenant through `replica`'s admin API: 200 means this process can open its secrets. */
      async function readable(replica: ServiceProcess): Promise<boolean> {
        const response = await fetch(`${replica.url}/admin/tenants/default`, { headers: adminHeaders });
        await response.arrayBuffer();
        if (response.status !== 200)
          problems.push(`GET tenant on ${keysOf.get(replica)}: ${response.status}`);
        return response.status === 200;
      }

      /** An admin write through `replica`: the row is sealed again with that replica's current key. */
      let edits = 0;
      async function editThrough(replica: ServiceProcess): Promise<void> {
        const shown = (await (
          await fetch(`${replica.url}/admin/tenants/default`, { headers: adminHeaders })
        ).json()) as Record<string, unknown>;
        const { id: _id, source: _source, ...body } = shown;
        body.texts = { ...(body.texts as object), unsupported: `Text only, please (edit ${++edits}).` };
        const put = await fetch(`${replica.url}/admin/tenants/default`, {
          method: "PUT",
          headers: adminHeaders,
          body: JSON.stringify(body),
        });
        await put.arrayBuffer();
        if (put.status !== 200) problems.push(`PUT through ${keysOf.get(replica)}: ${put.status}`);
        // Every process reads the new row (each forgets its cached copy on the change notification).
        await sleep(300);
        for (const other of live) await readable(other);
      }

      // Traffic: each thread sends its next message once the previous one was accepted, to a random live
      // replica; a replica that is shutting down answers 503 or refuses, and the "channel" tries the other.
      const sent: Message[] = [];
      let stop = false;
      let pick = 0;
      async function accept(m: Message): Promise<void> {
        for (let attempt = 0; attempt < 100; attempt++) {
          const targets = [...live];
          const target = targets[pick++ % targets.length]!;
          const hook = webhookFor(m, attempt);
          const response = await fetch(`${target.url}${hook.path}`, {
            method: "POST",
            headers: hook.headers,
            body: hook.body,
          }).catch(() => undefined);
          if (response?.status === 200) {
            await response.arrayBuffer();
            return;
          }
          const text = response ? await response.text() : "";
          const draining = !response || (response.status === 503 && text.includes("UNAVAILABLE"));
          if (!draining) problems.push(`${markerOf(m)} on ${keysOf.get(target)}: ${response.status} ${text}`);
          await sleep(50);
        }
        problems.push(`${markerOf(m)} never accepted`);
      }
      const lanes = CHANNELS.flatMap((channel) =>
        Array.from({ length: THREADS }, async (_, thread) => {
          for (let seq = 0; !stop; seq++) {
            const m = { channel, thread, seq };
            sent.push(m);
            await accept(m);
            await sleep(PAUSE_MS);
          }
        }),
      );

      /** Replaces one replica by a process with `keys`, while the other serves alone. */
      async function restart(slot: "a" | "b", keys: [string, string]): Promise<void> {
        const old = replicas[slot];
        live.delete(old);
        expect(await old.stop()).toBe(0);
        const next = await world.startService({ BRIDGE_SECRET_KEY: keys[1] });
        keysOf.set(next, keys[0]);
        replicas[slot] = next;
        live.add(next);
        await sleep(DWELL_MS);
        await editThrough(next);
        await sleep(DWELL_MS);
      }

      const steps: string[] = [];
      const step = (name: string) => {
        steps.push(`${name} (${sent.length} messages sent so far)`);
      };

      await sleep(DWELL_MS);
      await editThrough(replicas.a);
      // 1. Every process gets the new key second: it still encrypts with the old one, and reads both.
      step("1. BRIDGE_SECRET_KEY=old,new on each replica");
      await restart("a", ["K1,K2", `${K1},${K2}`]);
      await restart("b", ["K1,K2", `${K1},${K2}`]);
      // 2. Once all have it, the new key goes first: writes are sealed with it, and everyone can read them.
      step("2. BRIDGE_SECRET_KEY=new,old on each replica");
      await restart("a", ["K2,K1", `${K2},${K1}`]);
      await restart("b", ["K2,K1", `${K2},${K1}`]);
      // 3. Re-encrypt what is still sealed with the old key.
      step("3. bridge rotate-key");
      const rotated = spawnSync(process.execPath, [bridgeBin(), "rotate-key"], {
        env: { ...process.env, ...world.env, BRIDGE_SECRET_KEY: `${K2},${K1}` },
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(rotated.stderr).toBe("");
      expect(rotated.status).toBe(0);
      expect(rotated.stdout).toMatch(/"tenants":1\b/);
      await sleep(DWELL_MS);
      for (const replica of live) await readable(replica);
      // 4. The old key is removed.
      step("4. BRIDGE_SECRET_KEY=new on each replica");
      await restart("a", ["K2", K2]);
      await restart("b", ["K2", K2]);

      stop = true;
      await Promise.all(lanes);
      await waitFor(
        () => answeredCount(tally(world.fakes), sent) === sent.length,
        60_000,
        "every message answered",
      );
      // A reply reaches the channel before its row is marked delivered.
      await waitFor(async () => (await inbox.counts()).unfinished === 0, 10_000, "every row finished");
      const counts = await inbox.counts();
      const unreadable = world.logs.filter((l) => /cannot be read/.test(l));
      console.log(
        `key rotation: ${sent.length} messages over ${CHANNELS.length * THREADS} threads, ${edits} admin ` +
          `writes; steps: ${steps.join("; ")}; failed: ${counts.failed}, unreadable-tenant log lines: ` +
          `${unreadable.length}, problems: ${problems.length}`,
      );
      expect(problems).toEqual([]);
      expect(unreadable).toEqual([]);
      expect(counts.failed).toBe(0);
      expect(counts.unfinished).toBe(0);
      expect(counts.total).toBe(sent.length);
    },
    TIMEOUT_MS,
  );
});
