"""The tutorial's full replay-agent program, as a script, for timing whole processes (benchmarks/bench_command.py).

The printed program with the changes Gymnasium and today's NumPy need, and
a budget: `gymnasium` for `gym` (a 2-value `reset`, a 5-value `step`,
`done = terminated`, the same on unwrapped CartPole), `np.stack` of the
ragged rows through an object array (NumPy >= 1.24 refuses them otherwise),
actions cast to int64 (the tutorial gets them "by luck") and a stop after
`--samples` transitions (the printed loop runs forever). Everything else is
the tutorial's: its network and Adam, its list memory and `random.choices`,
its per-episode line.

    python benchmarks/tutorial_script.py [--samples 2500] [--agent replay|naive]
"""

import argparse
import math
import random

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim


class Network(torch.nn.Module):
    def __init__(self, alpha, inputShape, numActions):
        super().__init__()
        self.inputShape = inputShape
        self.numActions = numActions
        self.fc1Dims = 1024
        self.fc2Dims = 512

        self.fc1 = nn.Linear(*self.inputShape, self.fc1Dims)
        self.fc2 = nn.Linear(self.fc1Dims, self.fc2Dims)
        self.fc3 = nn.Linear(self.fc2Dims, numActions)

        self.optimizer = optim.Adam(self.parameters(), lr=alpha)
        self.loss = nn.MSELoss()
        self.device = torch.device("cpu")
        self.to(self.device)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)

        return x


class Agent:
    def __init__(self, lr, inputShape, numActions):
        self.network = Network(lr, inputShape, numActions)

    def chooseAction(self, observation):
        state = torch.tensor(observation).float().detach()
        state = state.to(self.network.device)
        state = state.unsqueeze(0)

        qValues = self.network(state)
        action = torch.argmax(qValues).item()

        chanceOfAsparagus = random.randint(1, 10)
        if chanceOfAsparagus == 1:  # 10% chance
            action = random.randint(0, 1)

        return action

    def learn(self, memory, batchSize):
        if len(memory) < batchSize:
            return

        self.network.optimizer.zero_grad()

        randomMemories = random.choices(memory, k=batchSize)
        memories = np.stack(np.array(randomMemories, dtype=object))
        states, actions, rewards, states_, dones = memories.T
        states, actions, rewards, states_, dones = \
            np.stack(states), np.stack(actions), np.stack(rewards), np.stack(states_), np.stack(dones)  # fmt: skip

        states = torch.tensor(states).float().to(self.network.device)
        actions = torch.tensor(actions.astype(np.int64)).to(self.network.device)
        rewards = torch.tensor(rewards.astype(np.float64)).float().to(self.network.device)
        states_ = torch.tensor(states_).float().to(self.network.device)
        dones = torch.tensor(dones.astype(bool)).to(self.network.device)

        qValues = self.network(states)
        nextQValues = self.network(states_)

        batchIndecies = np.arange(batchSize, dtype=np.int64)

        nowValues = qValues[batchIndecies, actions]  # interpret the past
        futureValues = torch.max(nextQValues, dim=1)[0]  # interpret the future
        futureValues[dones] = 0.0

        trueValuesOfNow = rewards + futureValues  # temporal difference
        loss = self.network.loss(trueValuesOfNow, nowValues)

        loss.backward()
        self.network.optimizer.step()

    def learnOne(self, state, action, reward, state_, done):  # the naive agent's learn
        self.network.optimizer.zero_grad()
        state = torch.tensor(state).float().detach().to(self.network.device).unsqueeze(0)
        state_ = torch.tensor(state_).float().detach().to(self.network.device).unsqueeze(0)
        reward = torch.tensor(reward).float().detach().to(self.network.device)

        qValues = self.network(state)
        nextQValues = self.network(state_)

        predictedValueOfNow = qValues[0][action]  # interpret the past
        futureActionValue = nextQValues[0].max()  # interpret the future
        trueValueOfNow = reward + futureActionValue * (1 - done)  # td function
        loss = self.network.loss(trueValueOfNow, predictedValueOfNow)

        loss.backward()
        self.network.optimizer.step()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2500)
    parser.add_argument("--agent", choices=("replay", "naive"), default="replay")
    args = parser.parse_args()
    env = gym.make("CartPole-v1").unwrapped
    agent = Agent(lr=0.0001, inputShape=(4,), numActions=2)
    BATCH_SIZE = 64
    memory = []

    highScore = -math.inf
    episode = samples = 0
    while samples < args.samples:
        done = False
        state, _ = env.reset()

        score, frame = 0, 1
        while not done and samples < args.samples:
            action = agent.chooseAction(state)
            state_, reward, done, _, _ = env.step(action)
            if args.agent == "replay":
                transition = [state, action, reward, state_, done]
                memory.append(transition)
                agent.learn(memory, BATCH_SIZE)
            else:
                agent.learnOne(state, action, reward, state_, done)
            state = state_

            score += reward
            frame += 1
            samples += 1

        highScore = max(highScore, score)

        print(("ep {}: high-score {:12.3f}, "
               "score {:12.3f}, last-episode-time {:4d}").format(episode, highScore, score, frame))  # fmt: skip

        episode += 1
