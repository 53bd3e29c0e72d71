/**
 * `kcm`: one command, a subcommand per service or task. Each subcommand is a
 * file in cli/commands/ exporting a {@link Command}; this file only dispatches.
 * Exit codes: 0 ok, 1 the command failed, 2 usage error.
 */
import { approvalCommand } from './commands/approval.ts';
import { auditCommand } from './commands/audit.ts';
import { coreCommand } from './commands/core.ts';
import { devCommand } from './commands/dev.ts';
import { doctorCommand } from './commands/doctor.ts';
import { gatewayCommand } from './commands/gateway.ts';
import { operatorCommand } from './commands/operator.ts';
import { pkiCommand } from './commands/pki.ts';
import { keyCommand, tenantCommand } from './commands/tenant.ts';
import { versionCommand } from './commands/version.ts';

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Runs the command; returns the exit code. */
  run(args: string[]): Promise<number> | number;
}

export const COMMANDS: readonly Command[] = [
  devCommand,
  coreCommand,
  gatewayCommand,
  operatorCommand,
  tenantCommand,
  keyCommand,
  approvalCommand,
  auditCommand,
  pkiCommand,
  doctorCommand,
  versionCommand,
];

export function helpText(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'kcm: OpenKCM key chain manager and edge crypto gateway',
    '',
    'Usage: kcm <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `kcm <command> --help` for the options of a command.',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(helpText());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') return versionCommand.run([]);
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    console.error(`kcm: unknown command "${name}"\n\n${helpText()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(`Usage: ${command.usage}\n\n${command.summary}`);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    console.error(`kcm ${name}: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}
