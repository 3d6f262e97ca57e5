"""Where every benchmark finds the project's shared data (real clips, photos, masks,
trajectories): $HVISNET_SHARED_DATA, else `shared/data` beside the checkout. The tests'
one place is the `shared_data` fixture in tests/conftest.py."""
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = (os.environ.get('HVISNET_SHARED_DATA') or
          os.path.join(os.path.dirname(REPO), 'shared', 'data'))
