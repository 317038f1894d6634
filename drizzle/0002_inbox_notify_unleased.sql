-- Custom migration (drizzle-kit generate --custom): messages a webhook's own process took straight from the
-- insert (leased in the INSERT itself) need no worker woken; notify only when a new row is left to claim.
CREATE OR REPLACE FUNCTION bridge_inbox_notify() RETURNS trigger AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM inserted WHERE lease_owner IS NULL) THEN
    PERFORM pg_notify('bridge_inbox', '');
  END IF;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
DROP TRIGGER inbound_messages_notify ON inbound_messages;
--> statement-breakpoint
CREATE TRIGGER inbound_messages_notify
  AFTER INSERT ON inbound_messages
  REFERENCING NEW TABLE AS inserted
  FOR EACH STATEMENT EXECUTE FUNCTION bridge_inbox_notify();
