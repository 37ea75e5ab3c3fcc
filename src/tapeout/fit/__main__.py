"""``python -m tapeout.fit``: the fitting driver (:mod:`tapeout.fit.driver`)."""

from tapeout.fit.driver import main

raise SystemExit(main())
