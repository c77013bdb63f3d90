// `auth` world in JavaScript: `configure` accepts any config; `authenticate` throws (an
// uncaught exception traps the instance).
export function configure(config) {}

export function authenticate(req) {
  throw new Error(`throw-js: refusing ${req.id}`);
}
