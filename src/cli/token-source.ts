/**
 * @module cli/token-source
 * Where the CLI (and the tools built on it: benches, the front end's discovery) finds its bearer
 * token: DIRIGENT_TOKEN, else $DIRIGENT_STATE_DIR/admin.token, else ./.dirigent/admin.token (the
 * one `dirigent up` wrote) if it exists. With none, calls go out without a token and a 401
 * explains where it looked.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export interface CliAuth {
  /** '' when none was found. */
  token: string;
  /** Where it came from, or the places looked at when it was not found. */
  source: string;
}

type Env = Readonly<Record<string, string | undefined>>;

export function cliAuth(env: Env, cwd: string): CliAuth {
  const fromEnv = env.DIRIGENT_TOKEN?.trim();
  if (fromEnv) return { token: fromEnv, source: 'DIRIGENT_TOKEN' };
  const files = [
    ...(env.DIRIGENT_STATE_DIR ? [join(resolve(cwd, env.DIRIGENT_STATE_DIR), 'admin.token')] : []),
    join(cwd, '.dirigent', 'admin.token'),
  ];
  for (const f of files) {
    if (!existsSync(f)) continue;
    const token = readFileSync(f, 'utf8').trim();
    if (token !== '') return { token, source: f };
  }
  return { token: '', source: `no token in DIRIGENT_TOKEN, ${files.join(', ')}` };
}

/** For a command that names its cluster's state dir (`--state-dir`): that dir's admin.token. */
export function cliAuthForStateDir(env: Env, cwd: string, stateDir: string): CliAuth {
  return cliAuth({ DIRIGENT_TOKEN: env.DIRIGENT_TOKEN, DIRIGENT_STATE_DIR: stateDir }, cwd);
}

export function authHeader(auth: CliAuth): Record<string, string> {
  return auth.token === '' ? {} : { authorization: `Bearer ${auth.token}` };
}

/** The one line a 401 prints. */
export function unauthorizedHint(auth: CliAuth): string {
  const tried = auth.token === '' ? auth.source : `the token from ${auth.source} was refused (unknown or revoked)`;
  return `the control plane needs a valid bearer token: ${tried}; set DIRIGENT_TOKEN (an admin makes one with \`dirigent token create --scope deploy\`) or run where \`dirigent up\` wrote .dirigent/admin.token`;
}
