DROP INDEX "inbound_status_idx";--> statement-breakpoint
CREATE INDEX "inbound_prunable_idx" ON "inbound_messages" USING btree ("updated_at") WHERE status in ('delivered', 'failed') and (text is not null or reply_html is not null);--> statement-breakpoint
CREATE INDEX "inbound_status_idx" ON "inbound_messages" USING btree ("status","id") WHERE status <> 'delivered';