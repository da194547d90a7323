"""Delta saves: a state's large buffers as extents of immutable, shared pieces.

``planner`` decides, for one buffer, which bytes are already stored (as pieces this writer
saved or loaded before) and which are new; the delta frame store (``store``) packs the new
pieces of one save into one object and writes a small manifest as HEAD.
"""
