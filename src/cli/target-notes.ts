// What `ban` and `unban` say about a target written with host bits ("203.0.113.10/24"): which
// network they act on instead. The bits are dropped, not refused, as firewalls do; the note says so.

/** Notes on the targets, by their index: a sparse array, since most targets get none. */
export type TargetNotes = readonly (string | undefined)[];

/**
 * On stderr, each note once ("203.0.113.10/24 is the network 203.0.113.0/24; banning that"), so
 * that a --json stdout stays one document; the JSON carries them in its results as `note`.
 */
export function printTargetNotes(notes: TargetNotes, shown = NOTES_SHOWN): void {
  const said = new Set<string>();
  for (const note of notes) {
    if (note === undefined || said.has(note)) continue;
    said.add(note);
    if (said.size <= shown) process.stderr.write(`floodgate: note: ${note}\n`);
  }
  // A --from-file of a million such lines would print a million notes: the first few say it.
  if (said.size > shown) {
    const more = said.size - shown;
    process.stderr.write(
      `floodgate: note: and ${more} more target${more === 1 ? '' : 's'} written with host bits, each taken as its network` +
        ' (--json lists every note)\n',
    );
  }
}

/** How many notes are printed before the rest are counted. */
const NOTES_SHOWN = 10;
