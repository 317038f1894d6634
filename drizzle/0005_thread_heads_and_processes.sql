CREATE TABLE "bridge_processes" (
	"id" text PRIMARY KEY NOT NULL,
	"heartbeat_at" timestamp with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
DROP INDEX "inbound_due_idx";--> statement-breakpoint
ALTER TABLE "inbound_messages" ADD COLUMN "queued" boolean DEFAULT false NOT NULL;--> statement-breakpoint
CREATE INDEX "inbound_ready_idx" ON "inbound_messages" USING btree ("next_attempt_at","id") WHERE status in ('pending', 'delivering') and not queued;