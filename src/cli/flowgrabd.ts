#!/usr/bin/env node
/** The `flowgrabd` daemon: not built yet (its issue covers policy, the Unix socket server and NFQUEUE sharing). */
process.stderr.write(
  'flowgrabd: the multi-user daemon is not built yet; use `flowgrab` in-process (as root) for now\n',
);
process.exitCode = 2;
