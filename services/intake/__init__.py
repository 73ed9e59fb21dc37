"""intake: takes reports from every channel, files them (立案) as cases, or rejects them."""
