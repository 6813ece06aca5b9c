// `npm run bench`: every benchmark, one after the other. `npm run bench -- verify` runs one.
// `scale` takes about an hour at its default sizes, so it runs only when named; its
// options follow it (`npm run bench -- scale --sizes 100k,1M`). `setslot` needs REDIS_RUNBOOK_BUILDS
// (the cost of one CLUSTER SETSLOT on each build), so it runs only when named too, and so do `move-ceiling`
// (what a moved key costs the servers, by mover: about 5 minutes) and `peers`
// (against RedisShake and RedisFullCheck: it needs their binaries; `peers-sync` and `peers-verify` run one half).
const args = process.argv.slice(2);
const firstFlag = args.findIndex((a) => a.startsWith('--'));
const which = firstFlag < 0 ? args : args.slice(0, firstFlag);
const all = ['failover', 'verify', 'drill', 'reshard', 'migrations', 'sync'];
const known = [...all, 'scale', 'setslot', 'move-ceiling', 'peers', 'peers-sync', 'peers-verify'];
// `peers`: the sync against RedisShake first, then verify against RedisFullCheck.
const files: Record<string, string[]> = { peers: ['peers-sync', 'peers-verify'] };
for (const name of which.length ? which : all) {
  if (!known.includes(name)) throw new Error(`unknown benchmark ${name}; use one of ${known.join(', ')}`);
  for (const file of files[name] ?? [name]) await import(`./${file}.js`);
}
