CREATE TABLE "conversations" (
	"tenant_id" text NOT NULL,
	"channel" text NOT NULL,
	"thread_key" text NOT NULL,
	"conv_id" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "conversations_tenant_id_channel_thread_key_pk" PRIMARY KEY("tenant_id","channel","thread_key")
);
--> statement-breakpoint
CREATE TABLE "inbound_messages" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"channel" text NOT NULL,
	"thread_key" text NOT NULL,
	"dedupe_key" text NOT NULL,
	"kind" text NOT NULL,
	"sender" jsonb NOT NULL,
	"route" jsonb NOT NULL,
	"text" text,
	"status" text DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp with time zone DEFAULT now() NOT NULL,
	"give_up_at" timestamp with time zone,
	"lease_until" timestamp with time zone,
	"lease_owner" text,
	"reply_html" text,
	"error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "outbound_messages" (
	"inbound_id" bigint NOT NULL,
	"part" integer NOT NULL,
	"channel_message_id" text,
	"status" text NOT NULL,
	"error_code" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "outbound_messages_inbound_id_part_pk" PRIMARY KEY("inbound_id","part")
);
--> statement-breakpoint
CREATE TABLE "tenants" (
	"id" text PRIMARY KEY NOT NULL,
	"settings" jsonb NOT NULL,
	"secrets_encrypted" text,
	"source" text DEFAULT 'api' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "outbound_messages" ADD CONSTRAINT "outbound_messages_inbound_id_inbound_messages_id_fk" FOREIGN KEY ("inbound_id") REFERENCES "public"."inbound_messages"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "conversations_updated_idx" ON "conversations" USING btree ("updated_at");--> statement-breakpoint
CREATE UNIQUE INDEX "inbound_dedupe_uq" ON "inbound_messages" USING btree ("tenant_id","channel","dedupe_key");--> statement-breakpoint
CREATE INDEX "inbound_due_idx" ON "inbound_messages" USING btree ("next_attempt_at","id") WHERE status in ('pending', 'delivering');--> statement-breakpoint
CREATE INDEX "inbound_thread_idx" ON "inbound_messages" USING btree ("tenant_id","channel","thread_key","id") WHERE status in ('pending', 'delivering');--> statement-breakpoint
CREATE INDEX "inbound_status_idx" ON "inbound_messages" USING btree ("status","id");--> statement-breakpoint
CREATE INDEX "outbound_channel_msg_idx" ON "outbound_messages" USING btree ("channel_message_id");