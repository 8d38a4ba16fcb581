// Integration tests drive the real kernel in network namespaces: they need
// root. Failing loudly (never skipping) keeps CI honest.
if (typeof process.getuid === 'function' && process.getuid() !== 0) {
  throw new Error('integration tests need root (network namespaces, nftables, conntrack): run `sudo npm test`');
}
