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
--> statement-breakpoint
-- A message the insert queued (its thread was busy, or an earlier row of the same statement is in its thread)
-- stays queued only behind an older unfinished message this statement can share-lock, whose end then waits for
-- this insert and makes it due. Otherwise (that message ended meanwhile, is being written, or was a redelivery
-- never stored) it is due at once. Done here, after the statement's rows are in: an insert that held such locks
-- while it waited for a redelivery's row, being ended, to commit, deadlocked with the ending statement.
CREATE OR REPLACE FUNCTION bridge_inbox_notify() RETURNS trigger AS $$
BEGIN
  UPDATE inbound_messages m SET next_attempt_at = now()
  WHERE m.id = ANY (ARRAY(SELECT i.id FROM inserted i WHERE i.next_attempt_at IS NULL AND i.status = 'pending'))
    AND NOT coalesce((SELECT true FROM inbound_messages o
      WHERE o.tenant_id = m.tenant_id AND o.channel = m.channel AND o.thread_key = m.thread_key
        AND o.status IN ('pending', 'delivering') AND o.id < m.id
      ORDER BY o.id DESC LIMIT 1 FOR SHARE OF o SKIP LOCKED), false);
  IF EXISTS (SELECT 1 FROM inserted WHERE lease_owner IS NULL) THEN
    PERFORM pg_notify('bridge_inbox', '');
  END IF;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;
