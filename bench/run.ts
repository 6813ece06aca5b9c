// `npm run bench`: every benchmark, one after the other. `npm run bench -- verify` runs one.
const which = process.argv.slice(2);
const all = ['failover', 'verify', 'drill', 'reshard', 'migrations', 'sync'];
for (const name of which.length ? which : all) {
  if (!all.includes(name)) throw new Error(`unknown benchmark ${name}; use one of ${all.join(', ')}`);
  await import(`./${name}.js`);
}
