CREATE TABLE "bridge_processes" (
	"id" text PRIMARY KEY NOT NULL,
	"heartbeat_at" timestamp with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
DROP INDEX "inbound_due_idx";--> statement-breakpoint
DROP INDEX "inbound_status_idx";--> statement-breakpoint
ALTER TABLE "inbound_messages" ALTER COLUMN "next_attempt_at" DROP NOT NULL;--> statement-breakpoint
-- Hand-added: ended messages, and those waiting behind an older unfinished message of their thread, are never
-- due: they leave the claim's index.
UPDATE "inbound_messages" SET "next_attempt_at" = NULL WHERE "status" IN ('delivered', 'failed');--> statement-breakpoint
UPDATE "inbound_messages" m SET "next_attempt_at" = NULL
WHERE m.status = 'pending' AND m.lease_owner IS NULL
  AND EXISTS (SELECT 1 FROM "inbound_messages" o
    WHERE o.tenant_id = m.tenant_id AND o.channel = m.channel AND o.thread_key = m.thread_key
      AND o.status IN ('pending', 'delivering') AND o.id < m.id);--> statement-breakpoint
CREATE INDEX "inbound_ready_idx" ON "inbound_messages" USING btree ("next_attempt_at","id") WHERE next_attempt_at is not null;--> statement-breakpoint
CREATE INDEX "inbound_failed_idx" ON "inbound_messages" USING btree ("id") WHERE status = 'failed';--> statement-breakpoint
CREATE INDEX "inbound_unfinished_idx" ON "inbound_messages" USING btree ("tenant_id","channel","thread_key","id") WHERE status in ('pending', 'delivering');