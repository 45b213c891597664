"""One quantize run's output, staged so that an interruption cannot leave a half-made export.

Every format is written (and, after QAT, scored) in a hidden folder inside ``--out`` and moved
into place only when all of them are done, each metadata.json last. Ctrl-C or an error before
that removes the hidden folder, and ``--out`` too when this run made it and it is empty (with the
empty folders this run made above it, as export does): a
later run finds ``--out`` as it was (an earlier export replaced by ``--force`` is removed only
at that last step), not an empty folder, nor one format of three that it then refuses without
``--force``. A killed process (SIGKILL, power loss) can leave only the hidden ``.quantize_run_*``
folder, which no command reads as an export; its name carries the run's host name, process id and
PID namespace (``.quantize_run_HOST.PID.NS.XXXXXXXX``, ``owners.owner_tag``), and the next run on the
same host and in the same PID namespace into the same ``--out`` removes it once that process is gone
(``sweep_stale_stages``). A PID means nothing on another host (an ``--out`` on a shared or network
file system) or in another container (its own PID namespace, even where it shares the host's name
with --net=host): those folders are named, never removed. On Windows no PID can be
probed (os.kill ends the process): this host's are named too, never removed.
"""
from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from ..errors import FORCE
from ..export.api import output_folder
from ..fileio import missing_folders, remove_empty_folders, replace_durably
from ..owners import OWNER_PATTERN, host_tag, owned_folders, owner_tag, process_alive, remove_tree
from ..export.metadata import METADATA_FILE
from .ptq import QuantizeResult

STAGE_PREFIX = ".quantize_run_"
# .quantize_run_HOST.PID.NS.XXXXXXXX (mkdtemp's suffix; HOST has no dots, see host_tag; NS the PID
# namespace, left out where it cannot be read); older yolox_edge versions wrote .quantize_run_HOST.PID.XXXXXXXX
# (judged by host and PID alone, as they were), before that .quantize_run_PID.XXXXXXXX and .quantize_run_XXXXXXXX
_STAGE_NAME = re.compile(re.escape(STAGE_PREFIX) + OWNER_PATTERN + r"\.[A-Za-z0-9_]+")
_PID_ONLY_NAME = re.compile(re.escape(STAGE_PREFIX) + r"([0-9]+)\.[A-Za-z0-9_]+")


def sweep_stale_stages(out: Path) -> tuple[list[Path], list[Path], list[Path], list[Path]]:
    """Remove the staging folders of this host in ``out`` whose quantize process is gone (a kill -9
    or a power loss skipped their cleanup; they hold QAT checkpoints, tens of MB). Returns
    (removed, older, elsewhere, unprobed), none of the last three touched: ``older`` are those an
    earlier yolox_edge named without a host name (without a process id, or with one that is not
    alive here: it may be a run going on on another host); ``elsewhere`` are those of other hosts,
    or of this host's other PID namespaces (a container run with --net=host has the host's name),
    whose process this one cannot probe; ``unprobed`` are this host's on Windows, where no process
    can be probed. A folder whose process is alive is never touched (after the PID was reused too:
    it waits for a later run)."""
    removed: list[Path] = []
    older: list[Path] = []
    elsewhere: list[Path] = []
    unprobed: list[Path] = []
    for path, state in owned_folders(out, STAGE_PREFIX):  # owners' rule, as for atomic writes' temps
        if state is None:
            pid_only = _PID_ONLY_NAME.fullmatch(path.name)
            if pid_only is None or not process_alive(int(pid_only.group(1))):  # None (Windows): named too
                older.append(path)
        elif state == "elsewhere":
            elsewhere.append(path)
        elif state == "unprobed":  # Windows: left, as before, but named (it was left unsaid, for good)
            unprobed.append(path)
        elif state == "gone" and remove_tree(path):
            removed.append(path)
    return removed, older, elsewhere, unprobed


def stale_stage_lines(out: Path, removed: list[Path], older: list[Path], elsewhere: list[Path] = (),
                      unprobed: list[Path] = ()) -> list[str]:
    """The lines a run says about ``sweep_stale_stages``'s result (none when it found nothing)."""
    lines = []
    if removed:
        n = len(removed)
        lines.append(f"quantize: removed {n} staging folder{'s' if n != 1 else ''} left in {out} by a quantize run "
                     f"that was killed ({', '.join(p.name for p in removed)}; its process is gone)")
    if older:
        lines.append(f"quantize: {', '.join(p.name for p in older)} in {out}: left by an older yolox-edge quantize "
                     "(no host name in the name, so not removed: it may be a run going on, here or on another "
                     "machine); delete it if no quantize is writing into this folder now")
    here = host_tag()
    other_hosts = [p for p in elsewhere if _STAGE_NAME.fullmatch(p.name).group(1) != here]
    if other_hosts:
        hosts = sorted({_STAGE_NAME.fullmatch(p.name).group(1) for p in other_hosts})
        lines.append(f"quantize: {', '.join(p.name for p in other_hosts)} in {out}: a quantize run's staging folder "
                     f"from {', '.join(hosts)}, not this machine ({here}): not removed, as whether that run "
                     "goes on cannot be told from here; delete it if no quantize there is writing into this folder")
    other_ns = [p for p in elsewhere if p not in other_hosts]
    if other_ns:
        lines.append(f"quantize: {', '.join(p.name for p in other_ns)} in {out}: a quantize run's staging folder "
                     f"from another container or PID namespace of this machine ({here}): not removed, as whether "
                     "that run goes on cannot be told from here; delete it if no quantize there is writing into "
                     "this folder")
    if unprobed:
        lines.append(f"quantize: {', '.join(p.name for p in unprobed)} in {out}: a quantize run's staging folder "
                     "from this machine, left if that run was killed: not removed, as Windows cannot tell whether "
                     "its process is still running; delete it if no quantize is writing into this folder now")
    return lines


REPORT_PHASE = "the FP32-vs-INT8 report"


class StagedOutput:
    """Context manager: ``dir`` is the hidden staging folder; ``commit`` moves the exports into place.

    ``phase`` (set by the caller as it goes) and ``committed`` say, when the run stops, what it
    was doing and what is already in place (``stopped_note``).
    """

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self.phase = "the start"
        self.committed: list[Path] = []
        self.made: list[Path] = []  # --out and the folders above it that this run made, deepest first
        self.removed_out = False
        self.dir: Path | None = None
        self.swept: list[str] = []  # what sweep_stale_stages found, as lines to say

    def __enter__(self) -> StagedOutput:
        self.made = missing_folders(self.out)
        try:
            output_folder(self.out)
            self.swept = stale_stage_lines(self.out, *sweep_stale_stages(self.out))
            # inside --out: the same file system, so each file moves into place by one rename; the
            # host and PID in the name tell a later run whether this one is still going
            self.dir = Path(tempfile.mkdtemp(prefix=f"{STAGE_PREFIX}{owner_tag()}.", dir=self.out))
        except BaseException:  # __exit__ is not called: the folders made so far go here
            remove_empty_folders(self.made)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
        if exc_type is not None and self.made:
            # the same helpers as export: only folders this run made, and only while empty
            remove_empty_folders(self.made)
            self.removed_out = not self.out.exists()
        return False

    def commit(self, staged: dict[str, QuantizeResult], targets: dict[str, Path]) -> dict[str, QuantizeResult]:
        """Move each staged export into its target folder (model files first, metadata.json last,
        so a folder never holds a metadata.json naming files not yet there)."""
        results = {}
        for fmt, res in staged.items():
            target = output_folder(targets[fmt])
            names = list(res.metadata["files"])
            # two flushed steps: a power loss can never keep metadata.json's rename and lose a model file's
            replace_durably([(res.directory / name, target / name) for name in names])
            replace_durably([(res.directory / METADATA_FILE, target / METADATA_FILE)])
            self.committed.append(target)
            results[fmt] = QuantizeResult(target, target / res.model_file.name, [target / n for n in names]
                                          + [target / METADATA_FILE], res.metadata)
        return results

    def stopped_note(self, exc: BaseException, *, qat: bool) -> str | None:
        """What a user needs after the run stopped: where it was, what is kept, how to run again.

        None when ``--out`` itself could not be made (read-only, no permission): the error names it,
        and "run the same command again" would fail the same way."""
        how = "interrupted" if isinstance(exc, KeyboardInterrupt) else "stopped by the error below"
        if self.dir is None:
            return "quantize: interrupted before it started: nothing was written" if how == "interrupted" else None
        if self.committed:
            kept = f"complete and kept: {', '.join(map(str, self.committed))}"
            rest = (f" (the report was not written; for it, run the same command with {FORCE}, which redoes "
                    "the quantization, or score each export with 'yolox-edge eval DIR --data SPEC')"
                    if self.phase == REPORT_PHASE else f"; run the same command with {FORCE} for the rest")
            return f"quantize: {how} during {self.phase}: {kept}{rest}"
        above = sum(not f.exists() for f in self.made[1:]) if self.removed_out else 0
        parents = f", with the {above} empty folder{'s' if above != 1 else ''} it made above it" if above else ""
        where = (f"{self.out} was removed (this run had made it{parents})" if self.removed_out
                 else f"{self.out} holds what it held before the run (an earlier export there is untouched)")
        again = ("QAT keeps nothing to resume from (there is no --resume): run the same command again to "
                 "start over." if qat else "Run the same command again.")
        return f"quantize: {how} during {self.phase}: nothing was written; {where}. {again}"
