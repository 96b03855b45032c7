"""Names shared by the activation modules and the diagnostics that read them.

No imports: `leakyjax._src.nnx` and the diagnostics use these without
importing flax.linen (or flax at all).
"""

#: The name under which every leakyjax activation module sows its input: linen
#: `sow("intermediates", SOW_NAME, x)`, nnx `sow(nnx.Intermediate, SOW_NAME, x)`.
SOW_NAME = "pre_activation"
#: The linen collection the modules sow into.
SOW_COLLECTION = "intermediates"
#: The bool attribute of the nnx modules that switches the sow on.
RECORD_FLAG = "record_pre_activation"
