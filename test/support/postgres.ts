/**
 * A throwaway PostgreSQL cluster for tests: initdb into a temp dir, pg_ctl
 * start on a free loopback port with trust auth and fsync=off, stop
 * (`-m immediate`) and remove in teardown. As root, every server command runs
 * as user `postgres` (initdb refuses root) and the temp dir is handed to it.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface PgServer {
  /** postgresql://postgres@127.0.0.1:PORT/postgres */
  connectionString: string;
  port: number;
  /** Milliseconds initdb + start took. */
  startupMs: number;
  /** The cluster's data directory (tests that scan every stored byte read it after a CHECKPOINT). */
  dataDir: string;
  stop(): Promise<void>;
}

/** The bin dir of the newest PostgreSQL under /usr/lib/postgresql that has initdb and pg_ctl. */
export function findPostgresBin(root = '/usr/lib/postgresql'): string | undefined {
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).sort((a, b) => Number(b) - Number(a) || b.localeCompare(a));
  return versions
    .map((v) => join(root, v, 'bin'))
    .find((bin) => existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'pg_ctl')));
}

/** Why the PostgreSQL tests must skip, or undefined when they can run (or must run: CI=true). */
export function postgresSkipReason(): string | undefined {
  if (findPostgresBin() !== undefined || process.env.CI === 'true') return undefined;
  return 'PostgreSQL binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin';
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

interface PostgresUser {
  uid: number;
  gid: number;
}

function postgresUser(): PostgresUser {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) throw new Error('running as root but there is no user postgres');
  return { uid: Number(uid), gid: Number(gid) };
}

/** argv that runs `cmd args` as postgres when we are root. */
function asServerUser(cmd: string, args: string[]): [string, string[]] {
  if (process.getuid?.() !== 0) return [cmd, args];
  if (existsSync('/usr/sbin/runuser') || existsSync('/sbin/runuser'))
    return ['runuser', ['-u', 'postgres', '--', cmd, ...args]];
  const quoted = [cmd, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  return ['su', ['postgres', '-s', '/bin/sh', '-c', quoted]];
}

/**
 * Starts a cluster; throws when the binaries are missing or the server does
 * not start (the log is in the message). Call stop() in teardown.
 */
export async function startPostgres(): Promise<PgServer> {
  const t0 = performance.now();
  const bin = findPostgresBin();
  if (bin === undefined) throw new Error('PostgreSQL binaries not found under /usr/lib/postgresql/*/bin');
  const dir = mkdtempSync(join(tmpdir(), 'okcm-pg-'));
  if (process.getuid?.() === 0) {
    const { uid, gid } = postgresUser();
    chownSync(dir, uid, gid);
  }
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  const pgCtl = join(bin, 'pg_ctl');
  const exec = (cmd: string, args: string[]) => run(...asServerUser(cmd, args), { cwd: dir });
  let port = 0;
  try {
    await exec(join(bin, 'initdb'), [
      '-D',
      data,
      '-A',
      'trust',
      '-U',
      'postgres',
      '-E',
      'UTF8',
      '--locale=C',
      '--no-sync',
    ]);
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      const opts = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c full_page_writes=off`;
      try {
        await exec(pgCtl, ['-D', data, '-l', log, '-w', '-t', '30', '-o', opts, 'start']);
        break;
      } catch (e) {
        if (attempt >= 3) throw e; // the port may have been taken between probe and start
      }
    }
  } catch (e) {
    const serverLog = existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : '';
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`PostgreSQL did not start: ${(e as Error).message}\n${serverLog}`);
  }
  const stopArgs = ['-D', data, '-m', 'immediate', '-w', 'stop'];
  // Safety net: never leave a postmaster behind if the test process exits without teardown.
  const onExit = (): void => {
    try {
      execFileSync(...asServerUser(pgCtl, stopArgs), { stdio: 'ignore' });
    } catch {}
  };
  process.once('exit', onExit);
  return {
    connectionString: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    port,
    startupMs: performance.now() - t0,
    dataDir: data,
    stop: async () => {
      process.removeListener('exit', onExit);
      try {
        await exec(pgCtl, stopArgs);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
