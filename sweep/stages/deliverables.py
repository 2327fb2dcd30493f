"""What a finished (or stopped) study leaves: the ranking with its report and plots, the layer scores
of the data-driven strategies, and the best student with its speed. Each is attempted on its own, so
that one that cannot be made never costs the others."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from analysis.aggregate import ranked_trials
from analysis.outputs import write_outputs, write_ranking
from analysis.plots import plot_layer_scores
from analysis.rank import rank_loaded
from analysis.ranked import top_strategy
from analysis.ranking import untested_table
from analysis.report import console_table
from analysis.results import InputError, load_results, write_trials_csv
from analysis.values import trial_values
from sweep.config.study import StudyConfig
from sweep.stages import export
from sweep.stages.trials import StageResults, stage_table
from trainables.metrics import direction
from trainables.reporting import UnreadableCheckpoint
from trainables.vocabulary import Stage

log = logging.getLogger(__name__)


def finish(config: StudyConfig, final: StageResults) -> bool:
    """Ranking, layer scores, best student and its speed, all in the study folder; returns False when
    nothing could be ranked (everything else still runs)."""
    top = rank_stage(config, final.stage)
    plot_choices(config)
    export_best(config, final, top)
    log.info(f"TensorBoard: tensorboard --logdir {config.study_dir}")
    return top is not None


def rank_stage(config: StudyConfig, stage: str) -> str | None:
    """Rank the strategies of `stage` into the study's ranking.csv (with report and plots), show a
    compact table, and return the top-ranked strategy; None (after saying why, and where the
    per-trial results are) when nothing could be ranked."""
    layout = config.layout
    source = layout.stage_dir(stage)
    try:
        race = layout.race_record if stage == Stage.REPLICATE and layout.race_record.is_file() else None
        study = rank_loaded(stage_table(layout, source), stage, config.ranked_metric, race=race)
        write_outputs(study, layout.ranking_csv, layout.ranking_plot, layout.report, layout.trials_csv)
    except InputError as error:
        log.info(f"Nothing to rank: {error} The per-trial results are in {source}.")
        return None
    except Exception as error:  # a bug in the analysis must not hide finished trials
        log.error(f"Ranking failed ({type(error).__name__}: {error}).", exc_info=True)
        return rank_untested(config, stage, f"the statistics failed ({type(error).__name__}: {error})")
    log.info(console_table(study))
    return top_strategy(study)


def rank_untested(config: StudyConfig, stage: str, reason: str) -> str | None:
    """The fallback ranking when the statistics fail: the strategies by their mean, without tests, in
    the study's ranking.csv (and its per-trial trials.csv); returns the top strategy, or None when even
    that cannot be made."""
    layout = config.layout
    source = layout.stage_dir(stage)
    try:
        results = stage_table(layout, source)
        table = untested_table(results, stage, config.ranked_metric, reason)
        write_ranking(table, layout.ranking_csv)
        write_trials_csv(results, layout.trials_csv)
    except Exception as error:
        log.error(
            f"No ranking without tests either ({type(error).__name__}: {error}); "
            f"the per-trial results are in {source}."
        )
        return None
    shown = table[["rank", "strategy", "n", "mean", "std", "aggregation"]].to_string(index=False)
    log.info(f"Ranking by mean only, without tests ({reason}), in {layout.ranking_csv}:\n{shown}")
    return str(table["strategy"].iloc[0])


def plot_choices(config: StudyConfig) -> None:
    """Draw what the data-driven strategies scored each teacher layer, from the teacher stage's record."""
    layout = config.layout
    record = json.loads(layout.teacher_record.read_text())
    path = layout.layer_scores_plot
    try:
        if plot_layer_scores(record["strategies"], path):
            log.info(f"Layer scores of the data-driven strategies: {path}")
    except Exception as error:  # a plot must not cost the study its other outputs
        log.warning(f"{path} could not be drawn ({type(error).__name__}: {error}).")


def export_best(config: StudyConfig, final: StageResults, top: str | None) -> None:
    """The best seed of the top-ranked strategy as a Hugging Face folder, and its speed. A trial whose
    checkpoint cannot be read is named and passed over for the next best."""
    layout, metric = config.layout, config.ranked_metric
    teacher = json.loads(layout.teacher_record.read_text())["path"]
    order = []
    if top:
        values = trial_values(load_results(Path(layout.stage_dir(final.stage))), metric)
        order = ranked_trials(values, top, direction(metric))
    for place, trial_id in enumerate(order):
        trial = final.by_id(trial_id)
        if trial.checkpoint is None:
            continue
        which = (
            f"the best seed of {top}, the top-ranked strategy"
            if place == 0
            else f"the number {place + 1} seed of {top}, "
            "the best of the top-ranked strategy with a readable checkpoint"
        )
        try:
            export.export_student(trial, teacher, layout.best_student, metric, which)
        except UnreadableCheckpoint as error:
            log.info(f"Best student: {trial.trial_id} ({top}, seed {trial.config.get('seed')}): {error}")
            continue
        speed = export.measure_speed(
            teacher,
            layout.best_student,
            config.data,
            config.export.speed_batch_size,
            config.export.speed_batches,
        )
        layout.speed.write_text(json.dumps(speed, indent=2))
        log.info(
            f"Best student: {which} (seed {trial.config['seed']}): {layout.best_student.name}/, "
            f"{speed['speedup']:.2f}x the teacher's speed"
        )
        return
    log.info(
        f"No finished {final.stage} trial of the top-ranked strategy has a readable checkpoint: "
        "no best student."
    )
