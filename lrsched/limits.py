"""Published limits on what one spec or one evaluation may ask for.

They keep every request bounded in memory and time; the service publishes them in its docs and
answers 413/422 above them.
"""

from __future__ import annotations

#: Most steps one evaluation may ask for.
MAX_STEPS_PER_REQUEST = 1_000_000
#: Largest step value accepted (2**53 - 1: every integer below it is exact in a JSON number).
MAX_STEP = 2**53 - 1
#: Deepest nesting of composite kinds (join_schedules inside join_schedules ...).
MAX_SPEC_DEPTH = 8
#: Most schedule nodes in one spec, counting every nested schedule and two per sgdr cycle. Compile
#: time grows faster than linearly with them (measured: 63 joined one-cycle schedules take 4 s,
#: 1,000 sgdr cycles 38 s and gigabytes), so this keeps the first evaluation of a spec near a second.
MAX_SPEC_NODES = 32
#: Most cycles in one ``sgdr_schedule``.
MAX_SGDR_CYCLES = 15
#: Most numbers in one list parameter (boundaries, values, boundaries_and_scales, cosine_kwargs ...).
MAX_LIST_LENGTH = 10_000
#: Longest `expression` text, in characters.
MAX_EXPRESSION_LENGTH = 1_000
#: Most syntax-tree nodes in one `expression`.
MAX_EXPRESSION_NODES = 200
#: Deepest syntax tree of one `expression`.
MAX_EXPRESSION_DEPTH = 32
#: Largest magnitude a float32 can hold; parameters beyond it would overflow to inf.
FLOAT32_MAX = 3.4028234663852886e38
