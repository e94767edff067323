import sys

from cctvchain.cli.main import main

sys.exit(main())
