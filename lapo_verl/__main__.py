import sys

from lapo_verl.cli import main

sys.exit(main())
