#!/usr/bin/env node
/** The `flowgrab` command. */
import { Command } from 'commander';
import { VERSION } from '../version.js';
import { arpCommand } from './arp.js';
import { conntrackCommand } from './conntrack.js';
import { dnsCommand } from './dns.js';
import { exportCommand } from './export.js';
import { labCommand } from './lab.js';
import { nfqueueCommand } from './nfqueue.js';
import { errorStyle } from './output.js';
import { policyCommand } from './policy.js';
import { reportError } from './run.js';
import { graphCommand, recordCommand, statusCommand, watchCommand } from './watch.js';

const program = new Command('flowgrab')
  .description('the kernel’s view of network traffic (conntrack, DNS, neighbours, queued packets) as typed records')
  .version(VERSION)
  .option('--daemon <path>', 'run through flowgrabd at this socket (or set FLOWGRAB_DAEMON); default: in-process')
  .showHelpAfterError('(run with --help for usage)')
  .addCommand(conntrackCommand())
  .addCommand(dnsCommand())
  .addCommand(arpCommand())
  .addCommand(nfqueueCommand())
  .addCommand(watchCommand())
  .addCommand(recordCommand())
  .addCommand(graphCommand())
  .addCommand(exportCommand())
  .addCommand(policyCommand())
  .addCommand(statusCommand())
  .addCommand(labCommand());
errorStyle(program, 'flowgrab');

try {
  await program.parseAsync(process.argv);
} catch (err) {
  reportError(err);
  process.exitCode = 1;
}
