/**
 * The channels this service serves. A channel is one folder with a descriptor (`defineChannel`) and one
 * line here; the tenant schema, the environment shorthand, secret handling, log redaction and the admin API
 * all derive from this list.
 */
import type { z } from "zod";
import type { ReplyFormat } from "../format/index.js";
import { slack } from "./slack/index.js";
import { telegram } from "./telegram/index.js";
import type { AdapterDeps, AdapterMap, ChannelAdapter, ChannelDescriptor, ChannelParts } from "./types.js";
import { whatsapp } from "./whatsapp/index.js";
import { whatsappCloud } from "./whatsapp_cloud/index.js";

export const CHANNELS = [telegram, slack, whatsapp, whatsappCloud] as const;

type Descriptor = (typeof CHANNELS)[number];
export type ChannelName = Descriptor["name"];

export const CHANNEL_NAMES = CHANNELS.map((channel) => channel.name) as [ChannelName, ...ChannelName[]];

/** Each channel's tenant block, optional: the shape `tenantSchema` spreads in. */
export type ChannelBlocks = { [D in Descriptor as D["name"]]: z.ZodOptional<D["schema"]> };

export const channelBlocks = Object.fromEntries(
  CHANNELS.map((channel) => [channel.name, channel.schema.optional()]),
) as ChannelBlocks;

/** The descriptors as one type, for code that walks them without caring which is which. */
export const descriptors: readonly ChannelDescriptor[] = CHANNELS;

/** The adapters of every channel, by name. */
export function createAdapters(deps: AdapterDeps): AdapterMap {
  return Object.fromEntries(
    descriptors.map((channel) => [channel.name, adapterOf(channel, channel.createAdapter(deps))]),
  );
}

/** A channel's parts as the service uses them: with its name, its reply format and its tenant block. */
export function adapterOf<Cfg>(descriptor: ChannelDescriptor, parts: ChannelParts<Cfg>): ChannelAdapter<Cfg> {
  return {
    ...parts,
    channel: descriptor.name,
    format: descriptor.format,
    ...(descriptor.maxBodyBytes !== undefined && { maxBodyBytes: descriptor.maxBodyBytes }),
    config: (tenant) => (tenant as Record<string, Cfg | undefined>)[descriptor.name],
  };
}

/** A route `app.ts` serves for a channel, below `/webhooks/:tenant/<channel>`. */
export interface WebhookRoute {
  path: "" | "/status";
  methods: ("GET" | "POST")[];
  /** For people: what the platform sends there. */
  purpose: string;
}

/** The routes a channel is served on, from what its adapter implements (as `app.ts` routes them). */
export function webhookRoutes(adapter: ChannelAdapter): WebhookRoute[] {
  return [
    { path: "", methods: adapter.handshake ? ["GET", "POST"] : ["POST"], purpose: "webhook" },
    ...(adapter.receiveStatus
      ? [{ path: "/status" as const, methods: ["POST" as const], purpose: "delivery reports" }]
      : []),
  ];
}

/** Each channel's reply format, by name. */
export const CHANNEL_FORMATS = Object.fromEntries(
  descriptors.map((channel) => [channel.name, channel.format]),
) as Record<ChannelName, ReplyFormat>;

/** The channels a tenant answers on. */
export function channelsOf(tenant: object): ChannelName[] {
  return CHANNEL_NAMES.filter((name) => (tenant as Record<string, unknown>)[name] !== undefined);
}
