/**
 * Watches a few files, or the files of a directory that pass a test, for
 * replacement without a restart: the directories are watched (so atomic
 * renames and Kubernetes `..data` symlink swaps are seen, which a watch on
 * the file itself misses), events are debounced, and `onChange` runs once
 * things are quiet. Callers compare contents themselves.
 */
import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname } from 'node:path';

export interface FileWatch {
  close(): void;
}

interface WatchOptions {
  debounceMs: number;
  log: (msg: string) => void;
}

/** Watches `files` (see the file comment). */
export function watchFiles(files: string[], onChange: () => void, o: WatchOptions): FileWatch {
  const byDir = new Map<string, Set<string>>();
  for (const f of files) {
    const names = byDir.get(dirname(f)) ?? new Set<string>();
    names.add(basename(f));
    byDir.set(dirname(f), names);
  }
  return watchDirectories(
    [...byDir].map(([dir, names]) => [dir, (name: string) => names.has(name)]),
    onChange,
    o,
  );
}

/** Watches the files of `dir` whose names pass `accept`, those created later included (see the file comment). */
export function watchDirectory(
  dir: string,
  accept: (name: string) => boolean,
  onChange: () => void,
  o: WatchOptions,
): FileWatch {
  return watchDirectories([[dir, accept]], onChange, o);
}

function watchDirectories(
  dirs: [dir: string, accept: (name: string) => boolean][],
  onChange: () => void,
  o: WatchOptions,
): FileWatch {
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(onChange, o.debounceMs);
    timer.unref();
  };
  const watchers: FSWatcher[] = [];
  for (const [dir, accept] of dirs) {
    try {
      const w = watch(dir, { persistent: false }, (_event, name) => {
        // Our files, or a `..data` symlink swap; a null name is unknown: check to be safe.
        if (name === null || accept(name) || name.startsWith('..')) schedule();
      });
      w.on('error', (err) => o.log(`watching ${dir} failed: ${err.message}; use SIGHUP to reload`));
      watchers.push(w);
    } catch (err) {
      o.log(`cannot watch ${dir}: ${err instanceof Error ? err.message : String(err)}; use SIGHUP to reload`);
    }
  }
  return {
    close() {
      clearTimeout(timer);
      for (const w of watchers.splice(0)) w.close();
    },
  };
}
