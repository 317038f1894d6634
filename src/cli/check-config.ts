/**
 * `bridge check-config`: what can be known of a configuration without the network. Certain mistakes were
 * already refused by `loadConfig` (the schemas); this reports each tenant with where it comes from and its
 * webhook URLs, and warns about what is probably wrong: shapes a platform does not guarantee, webhook URLs it
 * would not call, secrets sent over plain http.
 */
import { channelsOf, createAdapters, descriptors, webhookRoutes } from "../channels/registry.js";
import type { ChannelWarning } from "../channels/types.js";
import { SHORTHAND_VARIABLES } from "../config/env.js";
import type { AppConfig } from "../config/index.js";
import { createLogger } from "../log.js";
import { keyId, parseKeyRing } from "../tenants/secrets.js";

/** The report's lines, and how many of them are warnings. */
export interface ConfigReport {
  lines: string[];
  warnings: number;
}

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

export function checkConfig(config: AppConfig): ConfigReport {
  const adapters = createAdapters({ log: createLogger("silent") });
  const body: string[] = [];
  let warnings = 0;
  const warn = (indent: string, text: string) => {
    body.push(`${indent}warning: ${text}`);
    warnings++;
  };

  for (const tenant of config.tenants) {
    const fromEnvironment = tenant.id === config.environmentTenantId;
    const origin = fromEnvironment ? "the environment" : config.configPath;
    const channels = channelsOf(tenant);
    body.push(`tenant ${tenant.id} (from ${origin}): ${channels.join(", ") || "no channels"}`);
    // The environment tenant's settings are named by the variables a user sets.
    const name = (path: string) =>
      fromEnvironment && SHORTHAND_VARIABLES[path] ? `${SHORTHAND_VARIABLES[path]} (${path})` : path;

    for (const descriptor of descriptors) {
      const block = (tenant as Record<string, unknown>)[descriptor.name] as
        | Record<string, unknown>
        | undefined;
      if (!block) continue;
      const url = `${config.publicUrl ?? "<PUBLIC_URL>"}/webhooks/${tenant.id}/${descriptor.name}`;
      for (const route of webhookRoutes(adapters[descriptor.name]!)) {
        const label = route.purpose === "webhook" ? descriptor.name : `${descriptor.name} ${route.purpose}`;
        const methods = route.methods.length > 1 ? ` (${route.methods.join(" and ")})` : "";
        body.push(`  ${label}: ${url}${route.path}${methods}`);
      }
      const found: ChannelWarning[] =
        descriptor.warnings?.(block, config.publicUrl ? new URL(url) : undefined) ?? [];
      for (const { field, message } of found) {
        warn(
          "  ",
          field ? `${name(`${descriptor.name}.${field}`)}: ${message}` : `${descriptor.name}: ${message}`,
        );
      }
      const destination = block[descriptor.destination.field];
      if (typeof destination === "string" && sentInClear(destination)) {
        warn("  ", `${name(`${descriptor.name}.${descriptor.destination.field}`)}: ${IN_CLEAR}`);
      }
    }
    if (tenant.quickchat.base_url && sentInClear(tenant.quickchat.base_url)) {
      warn("  ", `${name("quickchat.base_url")}: ${IN_CLEAR}`);
    }
    if (channels.length === 0) warn("  ", "no channel is configured: this tenant receives nothing");
  }

  if (config.tenants.length === 0) {
    body.push(
      "no tenant is configured: neither a config file (BRIDGE_CONFIG, or ./bridge.yaml) nor QUICKCHAT_* and channel variables",
    );
    if (config.settings.ADMIN_TOKEN) {
      body.push("tenants added through the admin API are in the database, which check-config does not read");
    } else {
      warn(
        "",
        "ADMIN_TOKEN is not set either, so no tenant can be added: the bridge would answer no webhook",
      );
    }
  }
  if (!config.publicUrl) {
    warn("", "PUBLIC_URL is not set: replace <PUBLIC_URL> with your public base URL");
  }
  const ring = config.settings.BRIDGE_SECRET_KEY;
  if (ring) {
    const ids = parseKeyRing(ring).map(keyId);
    body.push(`BRIDGE_SECRET_KEY: ${ids.length} key(s), ids ${ids.join(", ")}; ${ids[0]} encrypts`);
  }

  const tenants = config.tenants.length;
  const summary = `configuration OK: ${tenants} tenant${tenants === 1 ? "" : "s"}, ${warnings} warning${warnings === 1 ? "" : "s"}`;
  return { lines: [summary, ...body], warnings };
}

const IN_CLEAR = "plain http to another host: the secrets sent there would cross the network unencrypted";

/** An http (not https) URL to a host other than this machine. */
function sentInClear(url: string): boolean {
  const parsed = new URL(url);
  return parsed.protocol === "http:" && !LOOPBACK.has(parsed.hostname);
}
