-- Custom migration (drizzle-kit generate --custom): wakes idle workers on every replica when messages arrive.
-- Statement-level, so a batch insert sends one notification, and NOTIFY is coalesced per transaction.
CREATE OR REPLACE FUNCTION bridge_inbox_notify() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('bridge_inbox', '');
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE TRIGGER inbound_messages_notify
  AFTER INSERT ON inbound_messages
  FOR EACH STATEMENT EXECUTE FUNCTION bridge_inbox_notify();
