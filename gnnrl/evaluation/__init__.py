"""gnnrl.evaluation"""
