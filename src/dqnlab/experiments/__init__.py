"""Running experiments: variants x paired seeds planned, resumed and run on a backend into a results directory.

    spec       what an experiment is: variants x seeds, one preset, one budget
    assemble   an experiment from a TOML file and compare's options
    runner     the plan (what to run, what to keep), and one run into its directory
    trainrun   the engine's results handed to the run directory's writer
    sweep      plan, run, time one agent alone, under the directory's lock; typed events, no printing
    events     what backends report: Planned, Started, Advanced, Finished, Ended, Retried, TimingAlone
    backends/  local processes, populations and Ray behind backend.run(tasks, on_event)
    clock      one agent timed alone, for runs that shared a clock
    limits     memory and disk cost, refused before anything is written
"""
