/**
 * Hash fields with their own TTL (Redis 7.4 HEXPIRE family), read on both sides for the
 * comparison. A server that cannot hold them (Redis before 7.4, Valkey 8.0) does not know
 * HPEXPIRETIME: it is never sent it, and its side reads as "no field TTLs, because".
 */
import type { NodeClient } from '../../redis/connect.js';
import { describeServer, holdsFieldTtls } from '../../redis/server-identity.js';
import type { Endpoint } from '../endpoint.js';
import { compareFieldTtls, type FieldExpiry } from './compare.js';

type Command = [string, ...(string | number | Buffer)[]];
/** A pipeline to one node of one side, as the comparison sends (and counts) them. */
export type Send = (node: NodeClient, cmds: Command[]) => Promise<Array<[Error | null, unknown]>>;

/** A hash to look at: its key and the fields asked about (the source's, which the target was found to have). */
export interface FieldSet {
  key: Buffer;
  fields: Buffer[];
}

/**
 * Whether field TTLs are worth reading at all: some master of either side has keys with
 * them (INFO keyspace `subexpiry`, one INFO per master). This gate is exact, not a guess:
 * `subexpiry` counts the keys holding at least one field with its own TTL, so when it is 0
 * on every master of both sides, no field TTL exists to differ. Gating on "both sides run
 * 7.4+" instead would add an HPEXPIRETIME per hash key to every comparison between 7.4
 * servers, nearly all of which have no field TTL, and would miss the case that matters
 * most: a 7.4 source with field TTLs against an older target, which lost them. Servers
 * before 7.4 report no `subexpiry` and count as 0 (they cannot hold any). What it cannot
 * see is a field TTL first set after it was read, like any write racing the comparison.
 */
export async function fieldTtlKeys(source: Endpoint, target: Endpoint): Promise<{ source: number; target: number }> {
  const [s, t] = await Promise.all([source.fieldTtlKeys(), target.fieldTtlKeys()]);
  return { source: s, target: t };
}

/** Why a node is not asked (its server cannot hold field TTLs), or undefined when it is. */
function cannot(ep: Endpoint, node: NodeClient): string | undefined {
  const server = ep.server(node);
  return holdsFieldTtls(server) ? undefined : `${describeServer(server)} cannot hold hash-field TTLs`;
}

const command = (h: FieldSet): Command => ['HPEXPIRETIME', h.key, 'FIELDS', h.fields.length, ...h.fields];

/**
 * One reply of HPEXPIRETIME, read. WRONGTYPE: the key stopped being a hash since its value
 * was read (written meanwhile); its fields are gone, which shows as a difference that the
 * next round rechecks. Any other error (NOPERM, MOVED) is thrown: a key must never pass
 * unchecked.
 */
function expiryOf([err, v]: [Error | null, unknown], h: FieldSet): FieldExpiry {
  if (err && /WRONGTYPE/.test(err.message)) return { at: h.fields.map(() => -2) };
  if (err) throw err;
  return { at: (v as unknown[]).map(Number) };
}

/**
 * HPEXPIRETIME of each hash's fields on one side: one pipeline per owning node. Nodes that
 * cannot hold field TTLs are not asked.
 */
export async function readFieldExpiry(ep: Endpoint, hashes: FieldSet[], send: Send): Promise<Map<Buffer, FieldExpiry>> {
  const out = new Map<Buffer, FieldExpiry>();
  const byNode = new Map<NodeClient, FieldSet[]>();
  for (const h of hashes) {
    const node = ep.route(h.key);
    const why = cannot(ep, node);
    if (why) out.set(h.key, { cannot: why });
    else byNode.set(node, [...(byNode.get(node) ?? []), h]);
  }
  await Promise.all(
    [...byNode].map(async ([node, hs]) => {
      const replies = await send(node, hs.map(command));
      hs.forEach((h, i) => out.set(h.key, expiryOf(replies[i]!, h)));
    }),
  );
  return out;
}

/**
 * The field TTLs of a hash too big for one reply, a page at a time (as its values are
 * compared): the source's HSCAN gives the field names (NOVALUES on a 7.4 source, which
 * has it: the values were compared already), HPEXPIRETIME of that page on each side
 * that can hold field TTLs. Returns the first difference and the pages read.
 */
export async function compareBigHashFieldTtls(
  src: { ep: Endpoint; send: Send },
  tgt: { ep: Endpoint; send: Send },
  key: Buffer,
  page: number,
  toleranceMs: number,
): Promise<{ diff?: [string, string]; pages: number }> {
  const node = src.ep.route(key);
  const novalues = holdsFieldTtls(src.ep.server(node));
  let cursor = '0';
  let pages = 0;
  do {
    pages++;
    const scan: Command = ['HSCAN', key, cursor, 'COUNT', page, ...(novalues ? ['NOVALUES'] : [])];
    const [[err, reply]] = (await src.send(node, [scan])) as [[Error | null, [Buffer, Buffer[]]]];
    if (err) throw err;
    cursor = reply[0].toString('latin1');
    const fields = novalues ? reply[1] : reply[1].filter((_, i) => i % 2 === 0);
    if (fields.length === 0) continue;
    const h = [{ key, fields }];
    const [a, b] = await Promise.all([readFieldExpiry(src.ep, h, src.send), readFieldExpiry(tgt.ep, h, tgt.send)]);
    const diff = compareFieldTtls(fields, a.get(key)!, b.get(key)!, toleranceMs);
    if (diff) return { diff, pages };
  } while (cursor !== '0');
  return { pages };
}
