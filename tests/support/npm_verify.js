// What `npm audit signatures` does for each installed package, with npm's
// own libraries (npm-registry-fetch and pacote, from the npm installation:
// NODE_PATH=<npm root -g>/npm/node_modules), minus its first step, fetching
// the public registry's keys from Sigstore's TUF CDN (not reachable from
// tests): the registry's keys come from `<registry>/-/npm/v1/keys`, as npm
// falls back to for any other registry.
//
//   node npm_verify.js <registry> <cache dir> <name@version>...
//
// Prints "verified <spec> <keyid>..." per spec; exits 1 with npm's error
// code on the first failure.
const fetch = require('npm-registry-fetch');
const pacote = require('pacote');

(async () => {
  const [registry, cache, ...specs] = process.argv.slice(2);
  const { keys } = await fetch.json('/-/npm/v1/keys', { registry, cache });
  const pemKeys = keys.map((k) => ({
    ...k,
    pemkey: `-----BEGIN PUBLIC KEY-----\n${k.key}\n-----END PUBLIC KEY-----`,
  }));
  const url = new URL(registry);
  const regKey = `//${url.host}${url.pathname}`;
  for (const spec of specs) {
    const m = await pacote.manifest(spec, {
      registry,
      cache,
      verifySignatures: true,
      [`${regKey}:_keys`]: pemKeys,
    });
    const sigs = (m._signatures || []).map((s) => s.keyid);
    if (!sigs.length) {
      throw Object.assign(new Error(`${spec} has no registry signature`), { code: 'EMISSING' });
    }
    process.stdout.write(`verified ${spec} ${sigs.join(' ')}\n`);
  }
})().catch((e) => {
  process.stderr.write(`${e.code || 'ERROR'}: ${e.message}\n`);
  process.exit(1);
});
