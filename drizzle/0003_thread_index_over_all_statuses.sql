DROP INDEX "inbound_dedupe_uq";--> statement-breakpoint
DROP INDEX "inbound_thread_idx";--> statement-breakpoint
CREATE UNIQUE INDEX "inbound_dedupe_uq" ON "inbound_messages" USING btree ("dedupe_key","tenant_id","channel");--> statement-breakpoint
CREATE INDEX "inbound_thread_idx" ON "inbound_messages" USING btree ("tenant_id","channel","thread_key","status","id");