import { assignWaves, parseMaxFailures, parseWavePercents, waveFailuresExceeded, WaveSpecError } from '../../lib/fleet/waves';

const stacks = (n: number) => Array.from({ length: n }, (_, i) => `tenant-t${String(i).padStart(3, '0')}`);

describe('assignWaves', () => {
  test('canary first, then cumulative percentages of the other 39 rounded up (1, 4, 20, 39); every key in exactly one wave', () => {
    const keys = stacks(40);
    const waves = assignWaves(keys, { canary: ['tenant-t007', 'tenant-absent'], percents: [1, 10, 50, 100] });
    expect(waves.map((w) => [w.index, w.name, w.keys.length])).toEqual([[0, 'canary', 1], [1, '1%', 1], [2, '10%', 3], [3, '50%', 16], [4, '100%', 19]]);
    expect(waves[0].keys).toEqual(['tenant-t007']);
    const all = waves.flatMap((w) => w.keys);
    expect(all.sort()).toEqual(keys);
  });

  test('stable: the same keys in another order give the same waves; adding a key moves no other key to an earlier wave', () => {
    const keys = stacks(30);
    const a = assignWaves(keys, { canary: [], percents: [10, 100] });
    const b = assignWaves([...keys].reverse(), { canary: [], percents: [10, 100] });
    expect(b).toEqual(a);
    expect(a[0].keys).not.toEqual(keys.slice(0, 3)); // not an alphabetical prefix
  });

  test('empty waves are dropped; no keys, no waves', () => {
    expect(assignWaves(['tenant-a'], { canary: [], percents: [1, 10, 100] }).map((w) => w.name)).toEqual(['1%']);
    expect(assignWaves([], { canary: ['x'], percents: [100] })).toEqual([]);
  });
});

describe('parsing', () => {
  test('wave percentages: cumulative, ascending, ending at 100, errors name the field', () => {
    expect(parseWavePercents('1, 10%,50,100', '--waves')).toEqual([1, 10, 50, 100]);
    expect(() => parseWavePercents('10,5,100', '--waves')).toThrow(/--waves: .*ascend/);
    expect(() => parseWavePercents('1,10,50', 'fleet.waves')).toThrow(/fleet.waves: the last wave must reach 100/);
    expect(() => parseWavePercents('1,x,100', '--waves')).toThrow(WaveSpecError);
    expect(() => parseWavePercents('0,100', '--waves')).toThrow(/not a percentage/);
  });

  test('max failures: a count or a percentage of the wave', () => {
    expect(parseMaxFailures('0', 'm')).toEqual({ count: 0 });
    expect(parseMaxFailures('5%', 'm')).toEqual({ percent: 5 });
    expect(() => parseMaxFailures('-1', '--max-failures')).toThrow(/--max-failures/);
    expect(() => parseMaxFailures('150%', '--max-failures')).toThrow(/more than 100%/);
    expect(waveFailuresExceeded(0, 10, { count: 0 })).toBe(false);
    expect(waveFailuresExceeded(1, 10, { count: 0 })).toBe(true);
    expect(waveFailuresExceeded(1, 20, { percent: 5 })).toBe(false);
    expect(waveFailuresExceeded(2, 20, { percent: 5 })).toBe(true);
  });
});
