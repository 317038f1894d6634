-- Custom migration (drizzle-kit generate --custom): when a message ends, the next message of its thread becomes
-- its thread's head, due at once. A trigger, because its query runs with a fresh snapshot once the ending
-- statement holds its row locks: it sees a message whose insert found this one unfinished and committed
-- meanwhile (that insert holds a SHARE lock on the row it found, which the ending UPDATE waits for). The
-- ending statement's own subquery would miss it, and that message would never be claimed.
CREATE OR REPLACE FUNCTION bridge_inbox_promote_next() RETURNS trigger AS $$
BEGIN
  UPDATE inbound_messages SET next_attempt_at = now()
  WHERE id = (SELECT n.id FROM inbound_messages n
      WHERE n.tenant_id = OLD.tenant_id AND n.channel = OLD.channel AND n.thread_key = OLD.thread_key
        AND n.status = 'pending' AND n.id > OLD.id
      ORDER BY n.id LIMIT 1)
    AND next_attempt_at IS NULL;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE TRIGGER inbound_promote_next
  AFTER UPDATE OF status ON inbound_messages
  FOR EACH ROW
  WHEN (OLD.status IN ('pending', 'delivering') AND NEW.status IN ('delivered', 'failed'))
  EXECUTE FUNCTION bridge_inbox_promote_next();
