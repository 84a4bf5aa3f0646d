"""Settings for every test tier."""

from hypothesis import settings

# Property tests assert behaviour, not speed: on a loaded 2-core machine (CI, or helpers running beside each other)
# hypothesis' default 200 ms deadline per example failed a pure-domain test that took 390 ms once and 16 ms on
# the retry. Speed is measured by benchmarks/, never by a test's timing.
settings.register_profile("steward", deadline=None)
settings.load_profile("steward")
