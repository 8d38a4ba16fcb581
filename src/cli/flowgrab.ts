#!/usr/bin/env node
/** The `flowgrab` command. */
import { Command } from 'commander';
import { VERSION } from '../version.js';
import { conntrackCommand } from './conntrack.js';
import { reportError } from './run.js';

const program = new Command('flowgrab')
  .description('the kernel’s connection tracking as typed records: dump, follow, export')
  .version(VERSION)
  .showHelpAfterError('(run with --help for usage)')
  .addCommand(conntrackCommand());

try {
  await program.parseAsync(process.argv);
} catch (err) {
  reportError(err);
  process.exitCode = 1;
}
