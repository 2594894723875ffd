"""The system call table as data: numbers, names, groups, argument kinds, variants, constants.

Knows nothing of rules or kernels; the rule language, both engines and the
formatter read it.
"""

from .constants import CONSTANTS, errno_name
from .kinds import ArgKind
from .table import (
    ABIS,
    I386,
    NO_RETURN,
    X32_CALLS,
    X86_64,
    Arg,
    Syscall,
    SyscallTable,
    filled_length,
    table,
)
from .variants import Condition, FromStruct, Variant, variants_of

__all__ = [
    "ABIS", "CONSTANTS", "I386", "NO_RETURN", "X32_CALLS", "X86_64", "Arg", "ArgKind", "Condition",
    "FromStruct",
    "Syscall", "SyscallTable", "Variant", "errno_name", "filled_length", "table",
    "variants_of",
]
