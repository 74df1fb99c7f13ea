// Preload for addons.test.ts: makes the optional native addons unresolvable, as on a machine where
// they were never installed, so the test sees what a user without them sees.
const Module = require('node:module');
const resolve = Module._resolveFilename;
const blocked = ['cap', 'raw-socket'];
Module._resolveFilename = function (request, ...rest) {
  // Subpaths too: on a miss tsx retries '<name>/index', which raw-socket has.
  const name = blocked.find((b) => request === b || request.startsWith(`${b}/`));
  if (name) {
    const err = new Error(`Cannot find module '${request}'`);
    err.code = 'MODULE_NOT_FOUND';
    throw err;
  }
  return resolve.call(this, request, ...rest);
};
