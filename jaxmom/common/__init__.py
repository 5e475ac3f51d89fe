"""Shared leaves of every layer: input checks, safe file writes and fingerprints. Not the API."""

from jaxmom.common._checks import (
    check_beta as check_beta,
)
from jaxmom.common._checks import (
    check_bool as check_bool,
)
from jaxmom.common._checks import (
    check_learning_rate as check_learning_rate,
)
from jaxmom.common._checks import (
    check_positive_int as check_positive_int,
)
from jaxmom.common._checks import (
    check_settings as check_settings,
)
from jaxmom.common._checks import (
    concrete as concrete,
)
from jaxmom.common._checks import (
    first_bad as first_bad,
)
from jaxmom.common._checks import (
    run_dtype as run_dtype,
)
from jaxmom.common._deprecate import renamed as renamed
from jaxmom.common._hashing import fingerprint as fingerprint
from jaxmom.common._paths import (
    atomic_path as atomic_path,
)
from jaxmom.common._paths import (
    check_output_file as check_output_file,
)
from jaxmom.common._paths import (
    check_parent as check_parent,
)
from jaxmom.common._paths import (
    umask as umask,
)
from jaxmom.common._paths import (
    write_text as write_text,
)
