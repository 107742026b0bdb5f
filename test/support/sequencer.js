// Runs the slowest files first (the deploy tier: a silo and the platform stack take minutes on the
// local AWS API), so on a fresh clone, which has no timing cache, they overlap with the many short
// files instead of starting last. Later runs keep jest's own order (failed first, then by duration).
const Sequencer = require('@jest/test-sequencer').default;

const SLOW_FIRST = [/test\/deploy\/silo-platform-deploy\.test\.ts$/, /test\/deploy\//];

class SlowFirstSequencer extends Sequencer {
  sort(tests) {
    const rank = (t) => {
      const i = SLOW_FIRST.findIndex((re) => re.test(t.path.replace(/\\/g, '/')));
      return i === -1 ? SLOW_FIRST.length : i;
    };
    const ordered = super.sort(tests);
    return [...ordered].sort((a, b) => rank(a) - rank(b));
  }
}

module.exports = SlowFirstSequencer;
