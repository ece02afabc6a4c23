"""What the Hub shows: model and dataset cards, push (see the Hub issue)."""
