// Preloaded into npm (`NODE_OPTIONS=--require`) by tests that run `npm audit signatures` on a
// machine without Internet access. npm first asks Sigstore's public TUF repository for the
// registry's keys and, when it does not list the registry (true of every private registry),
// falls back to the registry's `/-/npm/v1/keys`, which is what the tests are about. Without a
// network the TUF refresh itself fails and npm stops; then this answers as the TUF repository
// does for an unlisted registry (TUF_FIND_TARGET_ERROR). With a network nothing is changed.
// npm's own signature verification always runs unmodified.
'use strict'
const Module = require('module')
const load = Module._load
Module._load = function (request, ...rest) {
  const exports = load.call(this, request, ...rest)
  if (request === '@sigstore/tuf' && !exports.__offlineFallback) {
    const initTUF = exports.initTUF
    exports.initTUF = async (options) => {
      try {
        return await initTUF(options)
      } catch (err) {
        process.stderr.write(`tuf_offline: TUF unreachable (${err.code || err.message}); answering as for an unlisted registry\n`)
        return {
          getTarget: async (name) => {
            const e = new Error(`offline: no TUF target ${name}`)
            e.code = 'TUF_FIND_TARGET_ERROR'
            throw e
          },
        }
      }
    }
    exports.__offlineFallback = true
  }
  return exports
}
