import { Redis } from 'ioredis';

/**
 * A guard for a defect of ioredis's cluster client (5.x), which the test
 * writers and checkers use (the product talks to nodes one by one and does
 * not use it). On an ASK redirection it sends ASKING to the importing node
 * and never handles that command's promise. When the client drops that
 * node's connection before the reply (it does when one slot-map refresh
 * does not list the node, as happens while slots move), ASKING fails with
 * "Connection is closed." as an unhandled rejection, and node:test fails
 * whichever case is running. The redirected command itself fails on the
 * same connection and is retried by the client, so ASKING's own failure
 * says nothing: it is caught here. Imported for its effect.
 */
const asking = Redis.prototype.asking as (...args: unknown[]) => Promise<unknown>;
if (!(asking as { guarded?: boolean }).guarded) {
  const guarded = function (this: Redis, ...args: unknown[]) {
    const p = asking.apply(this, args);
    p.catch(() => undefined);
    return p;
  };
  (guarded as { guarded?: boolean }).guarded = true;
  (Redis.prototype as unknown as { asking: typeof guarded }).asking = guarded;
}
