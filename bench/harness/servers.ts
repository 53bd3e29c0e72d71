/**
 * Server processes of a run: each started by the harness pinned to the server
 * CPU, each announcing its ports on one stdout line, each stopped (SIGTERM to
 * the process the harness started, by pid) when the run ends — also when it
 * fails. nginx (the reverse-proxy baseline) runs from a config generated into
 * a temp dir: one worker, loopback only, no access log, keep-alive upstream.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pinnedCommand } from './pinning.ts';

const SERVE = fileURLToPath(new URL('../scenarios/serve.ts', import.meta.url));

export interface RunningServer {
  name: string;
  ports: Record<string, number>;
  pid: number;
  stop(): Promise<void>;
}

function track(child: ChildProcess, name: string): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) {
          console.error(`[bench] ${name} (pid ${child.pid}) ignored SIGTERM; SIGKILL`);
          child.kill('SIGKILL');
        }
      }, 3000).unref();
    });
}

/** Every server started and not yet stopped, so a signal can stop them all. */
const live = new Set<() => Promise<void>>();

/** Stops every server still running (on SIGINT/SIGTERM of the harness). */
export function stopAll(): Promise<void> {
  return Promise.all([...live].map((f) => f())).then(() => undefined);
}

/** Starts `bench/scenarios/serve.ts --kind kind` pinned to `cpu`; resolves once it announced its ports. */
export function startServe(
  name: string,
  kind: string,
  cpu: number | undefined,
  opts: { env?: Record<string, string>; tlsDir?: string; args?: string[] } = {},
): Promise<RunningServer> {
  const args = [
    '--import',
    'tsx',
    SERVE,
    '--kind',
    kind,
    ...(opts.tlsDir ? ['--tls', opts.tlsDir] : []),
    ...(opts.args ?? []),
  ];
  return startCommand(name, process.execPath, args, cpu, opts.env ?? {}, (line) => JSON.parse(line));
}

/**
 * Starts `cmd args` pinned to `cpu`; resolves once a line of its stdout gives
 * its ports through `parse` (null: not that line yet).
 */
export function startCommand(
  name: string,
  command: string,
  args: readonly string[],
  cpu: number | undefined,
  env: Record<string, string>,
  parse: (line: string) => Record<string, number> | null,
): Promise<RunningServer> {
  const [cmd, argv] = pinnedCommand(cpu, command, args);
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const tracked = track(child, name);
  const stop = () => {
    live.delete(stop);
    return tracked();
  };
  live.add(stop);
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`${name}: no ports announced within 30 s`));
    }, 30_000);
    child.once('error', reject);
    child.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited before announcing its ports (${code ?? sig})`));
    });
    let done = false;
    child.stdout?.on('data', (d: Buffer) => {
      if (done) return;
      out += d.toString();
      for (let nl = out.indexOf('\n'); nl >= 0 && !done; nl = out.indexOf('\n')) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        const ports = parse(line);
        if (!ports) continue;
        done = true;
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve({ name, ports, pid: child.pid as number, stop });
      }
    });
  });
}

/** A free loopback TCP port (bound, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Path of the nginx binary, or null when it is not installed. */
export function nginxBinary(): string | null {
  for (const p of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx']) {
    if (spawnSync(p, ['-v']).status === 0) return p;
  }
  return null;
}

export function nginxVersion(bin: string): string {
  return spawnSync(bin, ['-v'], { encoding: 'utf8' }).stderr.trim();
}

/** nginx as a plain reverse proxy to 127.0.0.1:upstreamPort, one worker, config in `dir`. */
export async function startNginx(
  bin: string,
  dir: string,
  upstreamPort: number,
  cpu: number | undefined,
): Promise<RunningServer> {
  const port = await freePort();
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  const conf = `${user}worker_processes 1;
daemon off;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'logs', 'error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  upstream app { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering on;
    }
  }
}
`;
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, conf);
  const test = spawnSync(bin, ['-t', '-p', dir, '-c', file, '-e', join(dir, 'logs', 'error.log')], {
    encoding: 'utf8',
  });
  if (test.status !== 0) throw new Error(`nginx -t failed: ${test.stderr}`);
  const [cmd, argv] = pinnedCommand(cpu, bin, ['-p', dir, '-c', file, '-e', join(dir, 'logs', 'error.log')]);
  const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'inherit'] });
  const tracked = track(child, 'nginx');
  const stop = () => {
    live.delete(stop);
    return tracked();
  };
  live.add(stop);
  // nginx prints nothing when ready: poll the port.
  const { connect } = await import('node:net');
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return { name: 'nginx', ports: { http: port }, pid: child.pid as number, stop };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await stop();
  throw new Error('nginx did not start listening');
}

/**
 * Builds (cargo, offline; a no-op when up to date) and starts the native floor
 * (bench/native-floor: a Rust epoll forwarder that seals the POST body's
 * fields with the native module's code) in front of 127.0.0.1:`upstreamPort`.
 */
export function startNativeFloor(upstreamPort: number, cpu: number | undefined): Promise<RunningServer> {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const cargoHome = join(process.env.HOME ?? '', '.cargo', 'bin');
  const build = spawnSync(
    'cargo',
    ['build', '--release', '--offline', '--quiet', '--manifest-path', join(root, 'bench/native-floor/Cargo.toml')],
    { encoding: 'utf8', env: { ...process.env, PATH: `${process.env.PATH ?? ''}:${cargoHome}` } },
  );
  if (build.error) return Promise.reject(new Error(`cargo: ${build.error.message}`));
  if (build.status !== 0) return Promise.reject(new Error(`cargo build failed: ${build.stderr.slice(-500)}`));
  const bin = join(root, 'target', 'release', 'kcm-native-floor');
  return startCommand('native-floor', bin, ['--upstream', String(upstreamPort)], cpu, {}, (line) =>
    line.startsWith('{') ? JSON.parse(line) : null,
  );
}
