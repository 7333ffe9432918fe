"""gnnrl.core.envs"""
