/** `flowgrab policy check`: explains a policy decision without running anything. */
import { Command } from 'commander';
import { wholeNumber } from './args.js';
import { reportError } from './run.js';

export function policyCommand(): Command {
  const p = new Command('policy').description('authorization policies');
  p.command('check')
    .description('would this user be allowed this graph? exit 0 when allowed, 1 with the issues when not')
    .argument('<graph>', 'a filter graph')
    .requiredOption('--policy <file>', 'the policy file (JSON)')
    .option('--user <name>', 'check for this user')
    .option('--uid <n>', 'check for this uid', wholeNumber('--uid'))
    .option('--json', 'print {allowed, issues, graph} as JSON')
    .action(async (text: string, o) => {
      try {
        const [{ parseGraph }, { printGraph }, auth] = await Promise.all([
          import('../filters/parser.js'),
          import('../filters/print.js'),
          import('../auth/index.js'),
        ]);
        if ((o.user === undefined) === (o.uid === undefined))
          throw new Error('give exactly one of --user NAME or --uid N');
        const id = o.user !== undefined ? auth.identityOfUser(o.user) : auth.identityOfUid(o.uid);
        if (!id) throw new Error(`no user named ${o.user} on this system`);
        const policy = auth.loadPolicy(o.policy);
        const r = auth.safeAuthorize(parseGraph(text), id, policy);
        if (o.json)
          process.stdout.write(
            `${JSON.stringify({ allowed: r.allowed, issues: r.issues, graph: r.graph }, null, 2)}\n`,
          );
        else if (r.allowed)
          process.stdout.write(
            `allowed for uid ${id.uid}${id.user ? ` (${id.user})` : ''}; runs as:\n  ${printGraph(r.graph)}\n`,
          );
        else for (const i of r.issues) process.stdout.write(`denied: ${i.path.join('.') || 'graph'}: ${i.message}\n`);
        process.exitCode = r.allowed ? 0 : 1;
      } catch (err) {
        reportError(err);
        process.exitCode = 2;
      }
    });
  return p;
}
