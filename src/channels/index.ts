import { createSlackAdapter } from "./slack/index.js";
import { createTelegramAdapter } from "./telegram/index.js";
import type { AdapterDeps, AdapterMap } from "./types.js";
import { createWhatsappAdapter } from "./whatsapp/index.js";

/** The channel adapters the service serves, by channel name. */
export function createAdapters(deps: AdapterDeps): AdapterMap {
  return {
    telegram: createTelegramAdapter(deps),
    slack: createSlackAdapter(deps),
    whatsapp: createWhatsappAdapter(deps),
  } as AdapterMap;
}
