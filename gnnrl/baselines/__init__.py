"""gnnrl.baselines"""
